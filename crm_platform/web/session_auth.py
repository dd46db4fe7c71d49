"""Browser sessions: the login and logout pages (Flask-Login), with CSRF protection (Flask-WTF)
on every form post. The JSON API does not accept the session cookie: it takes bearer tokens only,
so it needs no CSRF token and a forged cross-site request carries no credentials."""

from __future__ import annotations

from urllib.parse import urlsplit

from flask import Blueprint, Flask, flash, redirect, render_template, request, url_for
from flask.sessions import SecureCookieSessionInterface
from flask_login import LoginManager, UserMixin, login_required, login_user, logout_user
from flask_wtf import CSRFProtect, FlaskForm
from wtforms import PasswordField, StringField
from wtforms.validators import DataRequired, Length, ValidationError

from crm_platform.engine import Actor
from crm_platform.engine.errors import TooManyAttempts, Unauthenticated

from .context import accounts
from crm_platform.engine.messages import Message

from .payload import unstorable
from .throttle import login_throttle

bp = Blueprint("session_auth", __name__)
csrf = CSRFProtect()
login_manager = LoginManager()
login_manager.login_view = "session_auth.login"


class SessionUser(UserMixin):
    def __init__(self, actor: Actor):
        self.actor = actor

    def get_id(self) -> str:
        return self.actor.id


@login_manager.user_loader
def load_user(user_id: str) -> SessionUser | None:
    """Read on every request: a deactivated user's session ends at once."""
    actor = accounts().actor(user_id)
    return SessionUser(actor) if actor else None


def _storable(form, field) -> None:
    problem = unstorable(field.data or "")
    if problem:
        raise ValidationError(Message(problem, {"name": field.name}).render(
            request.accept_languages.best_match(["en", "zh"]) or "en"))


class LoginForm(FlaskForm):
    username = StringField("Username", validators=[DataRequired(), Length(max=100), _storable])
    password = PasswordField("Password", validators=[DataRequired(), Length(max=200), _storable])


@bp.route("/login", methods=["GET", "POST"])
def login():
    form = LoginForm()
    status = 200
    if form.validate_on_submit():
        try:
            username, password = form.username.data, form.password.data
            actor = login_throttle().authenticate(
                username, lambda: accounts().authenticate(username, password))
        except (Unauthenticated, TooManyAttempts) as exc:
            flash(exc.message.render(request.accept_languages.best_match(["en", "zh"]) or "en"), "error")
            status = 429 if isinstance(exc, TooManyAttempts) else 401
        else:
            login_user(SessionUser(actor))
            return redirect(_safe_next(request.args.get("next")))
    elif request.method == "POST":
        status = 400
    return render_template("login.html", form=form), status


@bp.post("/logout")
@login_required
def logout():
    logout_user()
    return redirect(url_for("session_auth.login"))


def _safe_next(target: str | None) -> str:
    """Only same-site paths: never redirect a fresh login to another host. Browsers drop tabs and
    newlines from a Location and read a backslash as a slash, so ``/%09/evil.example`` and
    ``/%5Cevil.example`` (decoded) are ``//evil.example`` to them: any control character, whitespace or
    backslash refuses the target outright."""
    if not target or any(c.isspace() or ord(c) < 0x20 or ord(c) == 0x7F or c == "\\" for c in target):
        return url_for("pages.index")
    parts = urlsplit(target)
    if target.startswith("/") and not target.startswith("//") and not parts.scheme and not parts.netloc:
        return target
    return url_for("pages.index")


class PageSessions(SecureCookieSessionInterface):
    """Cookie sessions for pages only. The JSON API takes bearer tokens and never reads a session, so
    its requests get a null session: no cookie to verify on the way in, none to sign on the way out."""

    def open_session(self, app, request):
        if request.path.startswith("/api/"):
            return self.make_null_session(app)
        return super().open_session(app, request)


def init_app(app: Flask, api_blueprints) -> None:
    app.session_interface = PageSessions()
    secure = app.config.get("SESSION_COOKIE_SECURE", False)
    app.config.update(SESSION_COOKIE_HTTPONLY=True, SESSION_COOKIE_SAMESITE="Lax",
                      REMEMBER_COOKIE_HTTPONLY=True, REMEMBER_COOKIE_SAMESITE="Lax", REMEMBER_COOKIE_SECURE=secure,
                      SESSION_PROTECTION="strong", WTF_CSRF_TIME_LIMIT=None)
    login_manager.init_app(app)
    csrf.init_app(app)
    for blueprint in api_blueprints:
        csrf.exempt(blueprint)  # bearer tokens only: no ambient credentials to forge
    app.register_blueprint(bp)
