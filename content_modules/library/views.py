"""Author pages (placeholder until the pages land)."""

from django.contrib.auth.decorators import login_required
from django.http import HttpResponse


@login_required
def module_list(request):
    return HttpResponse("library")


@login_required
def module_create(request):
    return HttpResponse("new")
