from django.contrib import admin

from tracking.models import EventRollup, ModelPrice, SavingsReport


@admin.register(ModelPrice)
class ModelPriceAdmin(admin.ModelAdmin):
    # Edits here skip re-pricing; use import_prices (or set_model_price) to re-price events.
    list_display = ("model", "input_per_token", "output_per_token", "effective_from", "applied_at")
    search_fields = ("model",)
    list_filter = ("effective_from",)


@admin.register(SavingsReport)
class SavingsReportAdmin(admin.ModelAdmin):
    list_display = ("router", "day", "created_at")
    list_filter = ("router",)
    readonly_fields = ("router", "day", "data", "created_at")


@admin.register(EventRollup)
class EventRollupAdmin(admin.ModelAdmin):
    list_display = ("router", "hour", "domain", "model", "tier", "ab_group", "requests", "cost")
    list_filter = ("router", "tier")
    readonly_fields = [f.name for f in EventRollup._meta.fields]
