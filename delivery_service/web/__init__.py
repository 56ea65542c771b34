"""Pages for people: log-in, the counter desk. Server-rendered, Vietnamese first."""

from __future__ import annotations

from flask import Flask, Response, render_template, request, session, url_for
from flask_babel import get_locale, gettext
from flask_wtf.csrf import CSRFError

from delivery_service import LOCALES
from delivery_service.extensions import login_manager

# Pages show personal data: keep them out of shared caches and other sites' frames.
PAGE_HEADERS = {
    "Cache-Control": "no-store",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; object-src 'none'; "
                               "base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
}


def register(app: Flask) -> None:
    """Wire log-in, the page blueprints, the language switch and the template helpers."""
    from delivery_service.accounts.models import User
    from delivery_service.accounts.services import session_user
    from delivery_service.accounts.views import SESSION_VERSION
    from delivery_service.accounts.views import bp as auth_bp
    from delivery_service.admin.audit import bp as admin_audit_bp
    from delivery_service.admin.clients import bp as admin_clients_bp
    from delivery_service.admin.notifications import bp as admin_notifications_bp
    from delivery_service.admin.orgs import bp as admin_orgs_bp
    from delivery_service.admin.privacy import bp as admin_privacy_bp
    from delivery_service.admin.rules import bp as admin_rules_bp
    from delivery_service.admin.users import bp as admin_users_bp
    from delivery_service.admin.views import bp as admin_bp
    from delivery_service.courier_app.views import bp as courier_app_bp
    from delivery_service.notifications.views import bp as notifications_bp
    from delivery_service.printing.views import bp as printing_bp
    from delivery_service.reports.totals_views import bp as report_input_bp
    from delivery_service.reports.views import bp as reports_bp
    from delivery_service.reports.weekly_views import bp as weekly_reports_bp
    from delivery_service.routing.plan_views import bp as routing_plan_bp
    from delivery_service.routing.views import bp as routing_bp
    from delivery_service.tracking.views import bp as tracking_bp
    from delivery_service.web import display, forms
    from delivery_service.web.jobs_views import bp as admin_jobs_bp
    from delivery_service.web.views import bp as counter_bp
    from delivery_service.webhooks.views import bp as webhooks_bp

    login_manager.login_view = "auth.login"
    login_manager.login_message = None  # the log-in page says why it is shown

    @login_manager.user_loader
    def load_user(user_id: str) -> User | None:
        return session_user(int(user_id), session.get(SESSION_VERSION)) if user_id.isdigit() else None

    app.register_blueprint(auth_bp)
    app.register_blueprint(counter_bp)
    app.register_blueprint(routing_bp)
    app.register_blueprint(routing_plan_bp)
    app.register_blueprint(webhooks_bp)
    app.register_blueprint(admin_jobs_bp)
    app.register_blueprint(admin_orgs_bp)
    app.register_blueprint(admin_clients_bp)
    app.register_blueprint(admin_rules_bp)
    app.register_blueprint(admin_bp)
    app.register_blueprint(admin_users_bp)
    app.register_blueprint(admin_audit_bp)
    app.register_blueprint(admin_privacy_bp)
    app.register_blueprint(printing_bp)
    app.register_blueprint(courier_app_bp)
    app.register_blueprint(tracking_bp)
    app.register_blueprint(admin_notifications_bp)
    app.register_blueprint(notifications_bp)  # /t/optout/<token> and the provider's inbound replies
    app.register_blueprint(reports_bp)
    app.register_blueprint(weekly_reports_bp)
    app.register_blueprint(report_input_bp)
    app.after_request(_page_headers)
    display.init_app(app)
    app.jinja_env.filters.update(translate_message=forms.translate_message, field_label=forms.field_label)

    @app.before_request
    def remember_language() -> None:
        if request.path.startswith("/api/"):
            return
        lang = request.args.get("lang")
        if lang in LOCALES and session.get("lang") != lang:
            session["lang"] = lang

    @app.context_processor
    def page_helpers() -> dict:
        return {"language_links": _language_links, "current_locale": lambda: str(get_locale() or "vi")}

    @app.errorhandler(CSRFError)
    def csrf_refused(exc: CSRFError):
        message = gettext("The form has expired or was not sent from this site. "
                          "Go back, reload the page and try again.")
        return render_template("error.html", code=400, message=message, translated=True), 400


def _page_headers(response: Response) -> Response:
    """Headers for HTML pages; the API (and its Swagger UI, with inline scripts) sets its own."""
    if response.mimetype != "text/html" or request.path.startswith("/api/"):
        return response
    for name, value in PAGE_HEADERS.items():
        response.headers.setdefault(name, value)
    return response


def _language_links() -> list[tuple[str, str, str]]:
    """(code, name, url) per language: this page again, in that language."""
    links = []
    # Query keys starting with "_" are url_for's own options (_anchor, _method, _external…): drop them.
    args = {k: v for k, v in request.args.items() if not k.startswith("_")}
    endpoint = request.endpoint  # after a POST, the same address shows the page afresh
    for code, name in (("vi", "Tiếng Việt"), ("en", "English")):
        if endpoint and request.view_args is not None:
            url = url_for(endpoint, **{**args, **request.view_args, "lang": code})
        else:
            url = url_for("auth.home", lang=code)
        links.append((code, name, url))
    return links
