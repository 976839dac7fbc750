"""URLs of a company's hosts (<slug>.ROOT_DOMAIN and its custom domains)."""

from __future__ import annotations

from django.urls import include, path
from django.views.i18n import set_language

from apps.accounts import views as accounts
from apps.dashboard import views as dashboard
from apps.widget import views as widget
from chapi.admin_sites import company_admin_site

urlpatterns = [
    path("", dashboard.root, name="root"),
    path("dashboard/", include("apps.dashboard.urls")),
    path("dashboard/team/", accounts.team, name="team"),
    path("dashboard/team/members/<int:pk>/role/", accounts.member_role, name="member_role"),
    path("dashboard/team/members/<int:pk>/remove/", accounts.member_remove, name="member_remove"),
    path(
        "dashboard/team/invitations/<int:pk>/revoke/",
        accounts.invitation_revoke_view,
        name="invitation_revoke",
    ),
    path("invite/<str:token>/", accounts.invitation_accept_view, name="invitation_accept"),
    path("auth/handoff/", accounts.signup_handoff, name="signup_handoff"),
    path("accounts/", include("allauth.urls")),
    path("admin/", company_admin_site.urls),
    path("i18n/setlang/", set_language, name="set_language"),
    path("embed", widget.embed, name="embed"),
    path("", include("apps.widget.urls")),
]
