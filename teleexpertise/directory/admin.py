from django.contrib import admin

from teleexpertise.directory.models import Absence, Network, NetworkMembership, Organisation, Professional, Site


class MembershipInline(admin.TabularInline):
    model = NetworkMembership
    autocomplete_fields = ("professional",)
    extra = 1


@admin.register(Professional)
class ProfessionalAdmin(admin.ModelAdmin):
    list_display = ("last_name", "first_name", "profession", "specialty", "rpps", "adeli", "organisation")
    list_filter = ("profession", "specialty")
    search_fields = ("last_name", "first_name", "rpps", "adeli", "user__email")
    autocomplete_fields = ("user", "organisation")
    raw_id_fields = ("site",)
    list_select_related = ("profession", "specialty", "organisation")
    filter_horizontal = ("requester_professions",)


class SiteInline(admin.TabularInline):
    model = Site
    extra = 0


@admin.register(Organisation)
class OrganisationAdmin(admin.ModelAdmin):
    list_display = ("name", "finess", "city", "is_group_practice")
    list_filter = ("is_group_practice",)
    search_fields = ("name", "finess", "city")
    inlines = [SiteInline]


@admin.register(Network)
class NetworkAdmin(admin.ModelAdmin):
    list_display = ("name", "specialty", "organisation", "is_active")
    list_filter = ("specialty", "is_active")
    search_fields = ("name",)
    inlines = [MembershipInline]
    filter_horizontal = ("requester_professions",)


@admin.register(Absence)
class AbsenceAdmin(admin.ModelAdmin):
    list_display = ("professional", "starts_on", "ends_on", "substitute", "network")
    list_filter = ("network",)
    search_fields = ("professional__last_name", "professional__first_name")
    autocomplete_fields = ("professional", "substitute")
    date_hierarchy = "starts_on"
    list_select_related = ("professional", "substitute", "network")
