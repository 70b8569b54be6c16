"""GeoservicesREST GPServer URLs (filled by the GPServer issue)."""

urlpatterns: list = []
