from django.apps import AppConfig


class ApiConfig(AppConfig):
    name = "apps.api"
    label = "api"
    verbose_name = "REST API"

    def ready(self) -> None:
        from corsheaders.signals import check_request_enabled

        from apps.api.cors import cors_allow_company_origin

        check_request_enabled.connect(cors_allow_company_origin, dispatch_uid="chapi-cors")
