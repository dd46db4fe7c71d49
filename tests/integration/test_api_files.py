"""File uploads and file fields, through the API."""

from __future__ import annotations

import io


def upload(client, headers, data=b"%PDF-1.4 signed", name="contract 2026.pdf", mimetype="application/pdf"):
    return client.post("/api/files", data={"file": (io.BytesIO(data), name, mimetype)}, headers=headers,
                       content_type="multipart/form-data")


def test_uploaded_file_can_be_downloaded_with_its_name_and_type(client, auth):
    response = upload(client, auth("rep"))
    assert response.status_code == 201
    body = response.json
    assert body["name"] == "contract 2026.pdf" and body["size"] == len(b"%PDF-1.4 signed")
    assert response.headers["Location"] == f"/api/files/{body['id']}"
    download = client.get(f"/api/files/{body['id']}", headers=auth("rep"))
    assert download.status_code == 200
    assert download.data == b"%PDF-1.4 signed"
    assert download.mimetype == "application/pdf"
    assert "contract%202026.pdf" in download.headers["Content-Disposition"]


def test_upload_without_a_file_field_is_400(client, auth):
    response = client.post("/api/files", data={"other": "x"}, headers=auth("rep"), content_type="multipart/form-data")
    assert response.status_code == 400
    assert "'file'" in response.json["error"]["message"]


def test_empty_upload_is_400(client, auth):
    assert upload(client, auth("rep"), data=b"").status_code == 400


def test_files_need_a_token(client, org):
    assert client.post("/api/files").status_code == 401
    assert client.get("/api/files/whatever").status_code == 401


def test_unknown_file_is_404(client, auth):
    assert client.get("/api/files/00000000-0000-7000-8000-000000000000", headers=auth("rep")).status_code == 404


def test_file_field_accepts_an_uploaded_file_and_rejects_an_unknown_id(client, auth):
    headers = auth("rep")
    file_id = upload(client, headers, data=b"\x89PNG...", name="checkin.png", mimetype="image/png").json["id"]
    bad = client.post("/api/records/activity", json={"subject": "Visit", "type": "visit", "photo": "not-a-file"},
                      headers=headers)
    assert bad.status_code == 422
    assert list(bad.json["error"]["fields"]) == ["photo"]
    good = client.post("/api/records/activity", json={"subject": "Visit", "type": "visit", "photo": file_id},
                       headers=headers)
    assert good.status_code == 201
    assert good.json["photo"] == file_id
