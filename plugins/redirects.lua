-- redirects: storefront redirects of every site, from the v3 list 250 at a time
-- (1/250 request per redirect). include=to_url adds the resolved target URL, which
-- a restore cannot rebuild without the target record; it costs no extra call. The
-- API documents no id range filter here, so they page by number; sort=id keeps new
-- redirects at the end, where the total check on the last page sees them.
-- to.entity_id points at a product, brand, category, page or post, hence depends.
return {
    contract = 1,
    type = "redirects",
    version = "1.0.0",
    scope = "store_v2_content_read_only",
    depends = { "products", "brands", "categories", "pages", "blog_posts" },
    natural_key = { "site_id", "from_path" },
    list = {
        api = "v3",
        path = "/storefront/redirects",
        paging = "page",
        limit = 250,
        query = { include = "to_url", sort = "id" },
    },
}
