from __future__ import annotations

from django.urls import path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from apps.analytics import api as analytics
from apps.api import views
from apps.leads import api as leads

urlpatterns = [
    path("chat", views.ChatView.as_view(), name="api-chat"),
    path("conversations", views.ConversationListView.as_view(), name="api-conversations"),
    path(
        "conversations/<int:pk>",
        views.ConversationDetailView.as_view(),
        name="api-conversation",
    ),
    path("leads", leads.LeadListView.as_view(), name="api-leads"),
    path("leads/<int:pk>", leads.LeadDetailView.as_view(), name="api-lead"),
    path("analytics", analytics.AnalyticsView.as_view(), name="api-analytics"),
    path(
        "schema",
        SpectacularAPIView.as_view(
            urlconf="chapi.urls_public", authentication_classes=[], permission_classes=[]
        ),
        name="api-schema",
    ),
    path(
        "docs",
        SpectacularSwaggerView.as_view(
            url_name="api-schema", authentication_classes=[], permission_classes=[]
        ),
        name="api-docs",
    ),
]
