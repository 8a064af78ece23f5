-- coupons: legacy v2 coupons, 250 a page (1/250 request per coupon), read by id
-- ranges: min_id/max_id are the filters the API itself advises for paging coupons.
-- The list record is complete; no child call. The API documents no sort for
-- coupons: if it ignores newest-first, o7 reads one open range, still exactly.
-- applies_to.ids names products or categories, hence depends.
--
-- Restore: one coupon a call (the API has no batch), matched by id, the id
-- map, then code; applies_to.ids go through the id map of their entity.
-- Coupons of type promotion stand for v3 promotions and are not recreated.
local R = require("_restore")

local ENTITY_TYPES = { products = "products", categories = "categories" }

-- applies_to.ids through the id map; ids that cannot be mapped are named in
-- the record's detail (and left out in another store).
local function remap_applies_to(api, body)
    local at = body.applies_to
    if type(at) ~= "table" or type(at.ids) ~= "table" then return {} end
    local kind = ENTITY_TYPES[at.entity]
    if kind == nil then return {} end
    local holder = { ids = at.ids }
    local missing = R.remap(api, holder, { ids = kind })
    at.ids = holder.ids
    return missing
end

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
    restore = R.one_by_one {
        type = "coupons",
        path = "/v2/coupons",
        item = "/v2/coupons/%s",
        strip = { "id", "num_uses", "date_created" },
        prepare = function(api, body)
            if body.type == "promotion" then
                return nil, "a promotion-type coupon stands for a v3 promotion; o7 does "
                    .. "not recreate it through the v2 coupons API"
            end
            -- the coupon still applies to what could be mapped; the rest is
            -- named in the record's detail
            return body, nil, remap_applies_to(api, body)
        end,
        lookup = function(api, body)
            if type(body.code) ~= "string" or body.code == "" then return nil end
            return R.find(api, "/v2/coupons", { code = body.code })
        end,
    },
}
