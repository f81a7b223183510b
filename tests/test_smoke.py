def test_login(auth, make_user, client):
    user = make_user("admin")
    response = auth.login(user)
    assert response.status_code == 302
    assert client.get("/").status_code == 200
    assert client.get("/tickets").status_code == 200
    assert client.get("/admin/users").status_code == 200
