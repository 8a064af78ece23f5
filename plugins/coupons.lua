-- coupons: legacy v2 coupons, 250 a page (1/250 request per coupon), read by id
-- ranges: min_id/max_id are the filters the API itself advises for paging coupons.
-- The list record is complete; no child call. The API documents no sort for
-- coupons: if it ignores newest-first, o7 reads one open range, still exactly.
-- applies_to.ids names products or categories, hence depends.
return {
    contract = 1,
    type = "coupons",
    version = "1.0.0",
    scope = "store_v2_marketing_read_only",
    depends = { "products", "categories" },
    natural_key = { "code" },
    list = {
        api = "v2",
        path = "/coupons",
        paging = "keyset",
        limit = 250,
        keyset = {
            from = "min_id",
            upto = "max_id",
            newest = { sort = "id:desc" },
        },
    },
}
