-- category_trees: the trees (one per channel) that categories hang from.
return {
    contract = 1,
    type = "category_trees",
    version = "1.0.0",
    scope = "store_v2_products_read_only",
    natural_key = { "name" },
    list = {
        api = "v3",
        path = "/catalog/trees",
        paging = "page",
        limit = 250,
    },
}
