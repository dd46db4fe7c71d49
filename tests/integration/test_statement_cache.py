"""Reads by id reuse a statement built once per caller and permission shape. These tests pin down
that a reused statement never answers for someone else, or for the caller as they were before a
change to their team, their records or their role."""

from __future__ import annotations

import sqlalchemy as sa

URL = "/api/records"


def test_a_warm_statement_follows_the_record_to_its_new_owner(client, auth, installation, org):
    made = client.post(f"{URL}/lead", json={"name": "Li"}, headers=auth("rep"))
    lead = made.json
    assert client.get(f"{URL}/lead/{lead['id']}", headers=auth("rep")).status_code == 200
    assert client.get(f"{URL}/lead/{lead['id']}", headers=auth("rep2")).status_code == 404
    installation.records(None).assign("lead", lead["id"], org["rep2"].id)
    assert client.get(f"{URL}/lead/{lead['id']}", headers=auth("rep")).status_code == 404
    assert client.get(f"{URL}/lead/{lead['id']}", headers=auth("rep2")).status_code == 200


def test_a_team_move_takes_effect_on_the_next_request(client, auth, installation, org):
    """The supervisor reads by team: after moving to another team, the old team's records are gone
    at once, although the statement for the old team is still cached."""
    made = client.post(f"{URL}/lead", json={"name": "Wang"}, headers=auth("rep"))  # rep is in Shanghai
    lead_url = f"{URL}/lead/{made.json['id']}"
    assert client.get(lead_url, headers=auth("supervisor")).status_code == 200
    users, teams = installation.runtime.tables["users"], installation.runtime.tables["teams"]
    with installation.db.begin() as conn:
        hangzhou = conn.scalar(sa.select(teams.c.id).where(teams.c.name == "Hangzhou"))
        conn.execute(users.update().where(users.c.id == org["supervisor"].id).values(team_id=hangzhou))
    assert client.get(lead_url, headers=auth("supervisor")).status_code == 404


def test_a_role_change_takes_effect_on_the_next_request(client, auth, installation, org):
    made = client.post(f"{URL}/lead", json={"name": "Zhao"}, headers=auth("rep2"))
    lead_url = f"{URL}/lead/{made.json['id']}"
    assert client.get(lead_url, headers=auth("rep")).status_code == 404
    users = installation.runtime.tables["users"]
    with installation.db.begin() as conn:
        conn.execute(users.update().where(users.c.id == org["rep"].id).values(role="admin"))
    assert client.get(lead_url, headers=auth("rep")).status_code == 200
