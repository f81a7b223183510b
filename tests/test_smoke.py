def test_login(auth, make_user, client):
    user = make_user("admin")
    response = auth.login(user)
    assert response.status_code == 302
    assert client.get("/").status_code == 200
    assert client.get("/tickets").status_code == 200
    assert client.get("/admin/users").status_code == 200


def test_no_attribute_reads_none_and_staff_pages_have_an_icon(auth, make_user, client):
    # WTForms writes an attribute given None as the text "None" (aria-describedby="None").
    assert '="None"' not in client.get("/login").text
    auth.sign_in(make_user("admin"))
    for url in ("/", "/tickets", "/admin/users", "/admin/users/new", "/account", "/pdca/new"):
        page = client.get(url)
        assert page.status_code == 200, url
        assert '="None"' not in page.text, url
        assert 'rel="icon"' in page.text, url
    icon = client.get("/static/favicon.svg")
    try:
        assert icon.status_code == 200 and icon.mimetype == "image/svg+xml"
    finally:
        icon.close()
