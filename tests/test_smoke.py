from survey_app.extensions import db
from survey_app.models import Ticket
from tests.conftest import event_payload


def test_webhook_creates_ticket(webhook, app):
    response = webhook.post(event_payload())
    assert response.status_code == 201, response.get_json()
    assert db.session.scalar(db.select(db.func.count()).select_from(Ticket)) == 1


def test_login(auth, make_user, client):
    user = make_user("admin")
    response = auth.login(user)
    assert response.status_code == 302
    assert client.get("/").status_code == 200
    assert client.get("/tickets").status_code == 200
    assert client.get("/admin/users").status_code == 200
