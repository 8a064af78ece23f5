-- pages: web pages of every type, with their bodies (the API leaves the
-- body out unless include=body is asked for).
return {
    contract = 1,
    type = "pages",
    version = "1.0.0",
    scope = "store_v2_content_read_only",
    natural_key = { "channel_id", "url" },
    list = {
        api = "v3",
        path = "/content/pages",
        paging = "page",
        limit = 250,
        query = { include = "body" },
    },
}
