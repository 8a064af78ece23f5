-- blog_posts: every blog post, read from the v2 list 250 at a time: one request per
-- 250 posts, plus the count before and after. The list record is complete (body
-- and tags included), so no include and no child call. The API documents no id
-- filter for posts, so they page by number; the count taken before and after the
-- scan catches most shifts.
return {
    contract = 1,
    type = "blog_posts",
    version = "1.0.0",
    scope = "store_v2_content_read_only",
    natural_key = { "url" },
    list = {
        api = "v2",
        path = "/blog/posts",
        paging = "page",
        limit = 250,
        count_path = "/blog/posts/count",
    },
}
