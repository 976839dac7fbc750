"""Dashboard URLs, mounted at /dashboard/ on company hosts (namespace "dashboard")."""

from __future__ import annotations

from django.urls import path

from apps.dashboard import (
    analytics,
    channels,
    experiments,
    flows,
    inbox,
    notifications,
    views,
    widget,
)
from apps.dashboard import lead_settings as lead_settings_views

app_name = "dashboard"

urlpatterns = [
    path("", views.home, name="home"),
    path("api-keys/", views.api_keys, name="api_keys"),
    path("api-keys/<int:pk>/revoke/", views.api_key_revoke_view, name="api_key_revoke"),
    path("api-keys/<int:pk>/rotate/", views.api_key_rotate_view, name="api_key_rotate"),
    path("api-token/", views.api_token, name="api_token"),
    path("assistant/test/", views.assistant_test, name="assistant_test"),
    path("assistant/test/reset/", views.assistant_test_reset, name="assistant_test_reset"),
    path("widget/", widget.widget_home, name="widget"),
    path("channels/", channels.channels_home, name="channels"),
    path("channels/<int:pk>/", channels.channel_detail, name="channel"),
    path(
        "channels/<int:pk>/disconnect/",
        channels.channel_disconnect_view,
        name="channel_disconnect",
    ),
    path("widget/keys/<int:pk>/", widget.widget_key_detail, name="widget_key"),
    path("widget/keys/<int:pk>/revoke/", widget.widget_key_revoke_view, name="widget_key_revoke"),
    path("leads/settings/", lead_settings_views.lead_settings_home, name="lead_settings"),
    path("leads/", inbox.leads_list, name="leads"),
    path("leads/export.csv", inbox.leads_export, name="leads_export"),
    path("leads/conversations.csv", inbox.conversations_export, name="conversations_export"),
    path("leads/<int:pk>/", inbox.lead_detail, name="lead"),
    path("leads/<int:pk>/<slug:action>/", inbox.lead_action, name="lead_action"),
    path("inbox/", inbox.inbox, name="inbox"),
    path("analytics/", analytics.analytics_home, name="analytics"),
    path("analytics/export.csv", analytics.analytics_export, name="analytics_export"),
    path("notifications/", notifications.notifications_home, name="notifications"),
    path("flows/", flows.flows_home, name="flows"),
    path("experiments/", experiments.experiments_home, name="experiments"),
    path("experiments/<int:pk>/", experiments.experiment_detail, name="experiment"),
    path(
        "experiments/<int:pk>/<slug:action>/",
        experiments.experiment_action,
        name="experiment_action",
    ),
    path("flows/versions/<int:number>/", flows.flow_version_view, name="flow_version"),
    path(
        "flows/versions/<int:number>/restore/",
        flows.flow_version_restore_view,
        name="flow_version_restore",
    ),
    path("flows/followups/", flows.followup_settings_view, name="followup_settings"),
    path("followups/<int:pk>/cancel/", flows.followup_cancel_view, name="followup_cancel"),
    path(
        "notifications/read-all/",
        notifications.notifications_read_all_view,
        name="notifications_read_all",
    ),
    path("notifications/<int:pk>/", notifications.notification_open_view, name="notification_open"),
    path("inbox/conversations/<int:pk>/", inbox.conversation_detail, name="conversation"),
    path(
        "inbox/conversations/<int:pk>/<slug:action>/",
        inbox.conversation_action,
        name="conversation_action",
    ),
    path(
        "leads/settings/test/", lead_settings_views.lead_webhook_test_view, name="lead_webhook_test"
    ),
    path(
        "leads/settings/deliveries/<int:pk>/resend/",
        lead_settings_views.lead_webhook_resend_view,
        name="lead_webhook_resend",
    ),
]
