-- categories: every category of every tree, from the flat tree-categories
-- list (250 a page). The nested per-tree endpoint allows one request at a
-- time per store and returns a whole tree in one body; the flat list pages,
-- keeps each category as its own record, and carries parent_id and tree_id
-- for the restore order (parents before children).
return {
    contract = 1,
    type = "categories",
    version = "1.0.0",
    scope = "store_v2_products_read_only",
    depends = { "category_trees" },
    natural_key = { "tree_id", "parent_id", "name" },
    list = {
        api = "v3",
        path = "/catalog/trees/categories",
        paging = "page",
        limit = 250,
        key = "category_id",
    },
}
