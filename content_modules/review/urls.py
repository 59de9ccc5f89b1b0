"""Reviewer pages, mounted at /review/."""

from django.urls import path

from . import trail_views, views, work_views

app_name = "review"

urlpatterns = [
    path("", views.queue, name="queue"),
    path("mine/", work_views.my_modules_view, name="my_modules"),
    path("tasks/<int:pk>/", views.task_detail, name="task"),
    path("tasks/<int:pk>/decide/", views.task_decide_view, name="task_decide"),
    path("tasks/<int:pk>/reassign/", views.task_reassign_view, name="task_reassign"),
    path("tasks/<int:pk>/annotations/", views.annotation_create_view, name="annotation_create"),
    path(
        "tasks/<int:pk>/annotations/<int:annotation_pk>/resolve/",
        views.annotation_resolve_view,
        name="annotation_resolve",
    ),
    path("annotations/<int:pk>/reply/", views.annotation_reply_view, name="annotation_reply"),
    path("annotations/<int:pk>/address/", views.annotation_address_view, name="annotation_address"),
    path("modules/<int:pk>/submit/", views.module_submit, name="module_submit"),
    path("modules/<int:pk>/withdraw/", views.module_withdraw_view, name="module_withdraw"),
    path("modules/<int:pk>/recall/", views.module_recall_view, name="module_recall"),
    path("modules/<int:pk>/history/", views.module_history, name="module_history"),
    path("modules/<int:pk>/audit.csv", views.module_audit_csv, name="module_audit_csv"),
    path(
        "modules/<int:pk>/versions/<int:number>/record.csv",
        views.version_record_csv,
        name="version_record_csv",
    ),
    path("audit.csv", views.audit_csv, name="audit_csv"),
    path("audit/", trail_views.system_audit, name="audit"),
    path("modules/<int:pk>/audit/", trail_views.module_audit, name="module_audit"),
    path("dashboard/", views.dashboard, name="dashboard"),
    path("dashboard.csv", views.dashboard_csv, name="dashboard_csv"),
]
