-- products: the catalog's products, each with everything a restore needs
-- (variants, images, custom fields, bulk pricing rules, options, modifiers,
-- videos), read in one call per page through include=.
--
-- Requests: including options or modifiers caps a page at 10 products, so
-- this costs 0.1 request per product. The alternative, pages of 250 and a
-- child call per product for options and another for modifiers (nothing in
-- the product record says whether it has modifiers), costs at least 2 per
-- product. Ten per page it is.
return {
    contract = 1,
    type = "products",
    version = "1.0.0",
    scope = "store_v2_products_read_only",
    depends = { "brands", "categories" },
    natural_key = { "sku", "custom_url.url" },
    list = {
        api = "v3",
        path = "/catalog/products",
        paging = "keyset",
        limit = 10,
        query = {
            include = "variants,images,custom_fields,bulk_pricing_rules,options,modifiers,videos",
            sort = "id",
            direction = "asc",
        },
        keyset = {
            after = "id:greater",
            upto = "id:max",
            newest = { sort = "id", direction = "desc" },
        },
    },
}
