-- customer_groups: the store's customer groups (v2 only), 250 per page with the count read
-- before and after the scan: one request per 250 groups plus two. The list record is
-- complete (category access and discount rules included), so no child call.
--
-- Restore: one call per group (the API writes one at a time), matched by its own id in the
-- same store, then the id map, then its name (unique in a store): equal is unchanged,
-- different is updated (PUT replaces the discount rules as a set), missing is created. The
-- category and product ids in discount rules and category access go through the id map;
-- what cannot be mapped in another store is dropped and named in the record's detail. o7
-- does not back up price lists, so price_list rules only survive in the same store.
local R = require("_restore")

local RULE_REFS = { category = { "category_id", "categories" },
    product = { "product_id", "products" }, price_list = { "price_list_id", "price_lists" } }

-- The id in the target for a reference, or nil (noted in missing) when it cannot be mapped.
local function target_id(api, kind, id, missing)
    local new = api.map(kind, id)
    if new ~= nil then return new end
    if api.same_store then return id end
    missing[#missing + 1] = kind .. " " .. tostring(id)
    return nil
end

local function remap_rules(api, rules, missing)
    local out = {}
    for _, rule in ipairs(rules) do
        local ref = RULE_REFS[rule.type]
        local keep = R.copy(rule)
        if ref and keep[ref[1]] ~= nil then
            keep[ref[1]] = target_id(api, ref[2], keep[ref[1]], missing)
            if keep[ref[1]] == nil then
                missing[#missing] = missing[#missing] .. " (its discount rule is dropped)"
                keep = nil
            end
        end
        if keep then out[#out + 1] = keep end
    end
    return api.json.array(out)
end

local function prepare(api, body)
    local missing = {}
    if type(body.discount_rules) == "table" then
        body.discount_rules = remap_rules(api, body.discount_rules, missing)
    end
    local access = body.category_access
    if type(access) == "table" and type(access.categories) == "table" then
        local cats = {}
        for _, c in ipairs(access.categories) do
            local new = target_id(api, "categories", c, missing)
            if new ~= nil then cats[#cats + 1] = new end
        end
        access.categories = api.json.array(cats)
    end
    return body, nil, missing
end

return {
    contract = 1,
    type = "customer_groups",
    version = "1.0.0",
    scope = "store_v2_customers_read_only",
    -- discount rules and category access name categories and products
    depends = { "categories", "products" },
    natural_key = { "name" },
    list = {
        api = "v2",
        path = "/customer_groups",
        paging = "page",
        limit = 250,
        count_path = "/customer_groups/count",
    },
    restore = R.one_by_one {
        type = "customer_groups",
        path = "/v2/customer_groups",
        item = "/v2/customer_groups/%s",
        strip = { "id", "date_created", "date_modified" },
        prepare = prepare,
        lookup = function(api, body)
            return R.find(api, "/v2/customer_groups", { name = body.name })
        end,
    },
}
