from django.contrib import admin

from apps.accounts.models import ApiToken


@admin.register(ApiToken)
class ApiTokenAdmin(admin.ModelAdmin):
    list_display = ("key_hint", "user", "name", "created_at", "created_from_ip", "last_used_at")
    list_select_related = ("user",)
    list_filter = ("created_at",)
    search_fields = ("user__username", "name", "key_hint")
    raw_id_fields = ("user",)
    readonly_fields = ("key_hint", "created_at", "created_from_ip", "last_used_at")
    fields = ("user", "name", "key_hint", "created_at", "last_used_at")

    def has_add_permission(self, request):
        # A token's key is shown once, at creation through the API; the admin can only revoke.
        return False
