"""Signing in and out in a real browser."""

from __future__ import annotations


def test_a_rep_signs_in_sees_their_entities_and_signs_out(page, live_server, org):
    page.goto(f"{live_server}/login")
    page.fill("input[name=username]", "rep")
    page.fill("input[name=password]", "rep-password")
    page.click("button[type=submit]")
    page.wait_for_selector("#current-user")
    assert page.inner_text("#current-user") == "rep"
    entities = page.inner_text("#entities")
    assert "lead" in entities and "opportunity" in entities
    page.click("text=Sign out")
    page.wait_for_selector("h1:has-text('Sign in')")
    assert page.locator("#current-user").count() == 0


def test_a_wrong_password_shows_an_error_in_the_page(page, live_server, org):
    page.goto(f"{live_server}/login")
    page.fill("input[name=username]", "rep")
    page.fill("input[name=password]", "wrong-password")
    page.click("button[type=submit]")
    alert = page.wait_for_selector("[role=alert]")
    assert alert.inner_text() == "Wrong username or password."
    assert page.locator("#current-user").count() == 0
