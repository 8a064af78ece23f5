-- products: the catalog's products, each with everything a restore needs
-- (variants, images, custom fields, bulk pricing rules, options, modifiers,
-- videos), read in one call per page through include=.
--
-- Requests: including options or modifiers caps a page at 10 products, so
-- this costs 0.1 request per product. The alternative, pages of 250 and a
-- child call per product for options and another for modifiers (nothing in
-- the product record says whether it has modifiers), costs at least 2 per
-- product. Ten per page it is.
--
-- Restore, and what it costs. Batches of 10 (the most one page with options and modifiers
-- included holds), so every lookup below is one request for the whole batch:
--   1. same store: GET products?id:in=<the batch's own ids>&include=everything;
--   2. the rest, when the id map knows them: GET products?id:in=<mapped ids>;
--   3. the rest, by sku: GET products?sku:in=<skus>. There is no custom_url filter, so the
--      custom URL is matched only when a create answers 409 (then GET ?name= finds it).
-- Then per product:
--   created: one POST carrying variants (option values by option_display_name + label, which
--     also creates the options), images (image_url = the backup's url_zoom), custom fields,
--     bulk pricing rules and videos. The API cannot take options' own settings or modifiers
--     inline: an option whose type, config or sort order differs from the backup (a swatch)
--     costs a PUT, each option value whose value data differs a PUT, each modifier a POST.
--     A product without options or modifiers costs exactly 1 request; with a Size option too.
--   unchanged: nothing beyond the batch's lookups.
--   updated: a PUT of only the product members that differ, and per sub-resource one write
--     per item added, changed or removed. A variant whose option values differ is deleted
--     and created again: option values cannot change.
-- An image whose URL cannot be fetched is left out (the create is sent again without it)
-- and named in the product's report line; the product itself is still restored.
local R = require("_restore")

local P = "/v3/catalog/products"
local INCLUDE = "variants,images,custom_fields,bulk_pricing_rules,options,modifiers,videos"

-- Never sent: read-only, server-computed (statistics kept from reviews, orders and views),
-- the v2 option set leftovers, and the sub-resources, which go their own way.
local STRIP = { "id", "date_created", "date_modified", "calculated_price", "base_variant_id",
    "parent_relations", "primary_image", "option_set_id", "option_set_display", "view_count",
    "total_sold", "reviews_rating_sum", "reviews_count", "variants", "images",
    "custom_fields", "bulk_pricing_rules", "options", "modifiers", "videos" }
local VARIANT_FIELDS = { "sku", "price", "sale_price", "retail_price", "map_price", "weight",
    "width", "height", "depth", "is_free_shipping", "fixed_cost_shipping_price",
    "purchasing_disabled", "purchasing_disabled_message", "cost_price", "upc", "mpn", "gtin",
    "inventory_level", "inventory_warning_level", "bin_picking_number" }

local function arr(api, t) return api.json.array(t or {}) end

local function pick(src, fields)
    local out = {}
    for _, f in ipairs(fields) do out[f] = R.copy(src[f]) end
    return out
end

local function csv(list)
    local parts = {}
    for i, v in ipairs(list) do parts[i] = tostring(v) end
    return table.concat(parts, ",")
end

local function has(list) return type(list) == "table" and list[1] ~= nil end

-- ---- lookups -------------------------------------------------------------------------------

local function fetch(api, query)
    local out, page = {}, 1
    repeat
        query.include, query.limit, query.page = INCLUDE, 10, page
        local status, body = api.get(P, query)
        if status ~= 200 then
            error("looking products up: " .. R.message(api, status, body), 0)
        end
        local doc = api.json.decode(body)
        for _, p in ipairs(doc.data or {}) do out[#out + 1] = p end
        local pg = doc.meta and doc.meta.pagination or {}
        page = page + 1
    until (pg.total_pages or 1) < page
    return out
end

-- Sets item.live for every item found by own id, the id map, then sku.
local function match(api, items)
    local function pass(filter, want)
        local ids, who = {}, {}
        for _, it in ipairs(items) do
            local v = it.live == nil and want(it) or nil
            if v ~= nil and v ~= "" and not who[tostring(v)] then
                ids[#ids + 1], who[tostring(v)] = v, {}
            end
            if v ~= nil and v ~= "" and it.live == nil then
                table.insert(who[tostring(v)], it)
            end
        end
        if #ids == 0 then return end
        for _, p in ipairs(fetch(api, { [filter] = csv(ids) })) do
            local key = filter == "sku:in" and p.sku or p.id
            for _, it in ipairs(who[tostring(key)] or {}) do it.live = p end
        end
    end
    if api.same_store then pass("id:in", function(it) return it.rec.id end) end
    pass("id:in", function(it) return api.map("products", it.rec.id) end)
    pass("sku:in", function(it) return it.rec.sku end)
end

-- ---- bodies ------------------------------------------------------------------------------------

-- The product members to send, references remapped; also the list of those not found.
local function product_body(api, rec)
    local body = R.strip(rec, STRIP)
    if has(rec.options) then body.inventory_level = nil end -- the sum of the variants'
    local auto = false
    if type(body.related_products) == "table" then
        local keep = {}
        for _, id in ipairs(body.related_products) do
            if id == -1 then auto = true else keep[#keep + 1] = id end
        end
        body.related_products = keep
    end
    -- tax_class_id is the target's own id: mapped by the class's name (tax_classes)
    local missing = R.remap(api, body, { brand_id = "brands", categories = "categories",
                                         related_products = "products",
                                         tax_class_id = "tax_classes" })
    if body.brand_id == nil and rec.brand_id ~= nil then body.brand_id = 0 end
    if body.tax_class_id == nil and rec.tax_class_id ~= nil then body.tax_class_id = 0 end
    if auto then table.insert(body.related_products, 1, -1) end
    if body.related_products then arr(api, body.related_products) end
    return body, missing
end

local function combo_key(option_values)
    local parts = {}
    for _, ov in ipairs(option_values or {}) do
        parts[#parts + 1] = tostring(ov.option_display_name) .. "=" .. tostring(ov.label)
    end
    table.sort(parts)
    return table.concat(parts, "|")
end

local function variant_body(api, v, with_options)
    local body = pick(v, VARIANT_FIELDS)
    if with_options then
        local ovs = {}
        for _, ov in ipairs(v.option_values or {}) do
            ovs[#ovs + 1] = { option_display_name = ov.option_display_name, label = ov.label }
        end
        body.option_values = arr(api, ovs)
    end
    return body
end

local function image_body(img)
    return { is_thumbnail = img.is_thumbnail, sort_order = img.sort_order,
             description = img.description }
end

local function value_body(v, modifier)
    local b = { label = v.label, sort_order = v.sort_order, value_data = R.copy(v.value_data),
                is_default = v.is_default }
    if modifier then b.adjusters = R.copy(v.adjusters) end
    return b
end

local function values_body(api, values, modifier)
    local out = {}
    for i, v in ipairs(values or {}) do out[i] = value_body(v, modifier) end
    return arr(api, out)
end

local function option_body(o)
    return { display_name = o.display_name, type = o.type, sort_order = o.sort_order,
             config = R.copy(o.config) }
end

local function modifier_body(m)
    local b = option_body(m)
    b.required = m.required
    return b
end

-- The create body: the product with its inline sub-resources.
local function create_body(api, rec, body)
    local full = R.copy(body)
    if has(rec.options) then
        local vs = {}
        for i, v in ipairs(rec.variants or {}) do vs[i] = variant_body(api, v, true) end
        full.variants = arr(api, vs)
    end
    local imgs = {}
    for i, img in ipairs(rec.images or {}) do
        local b = image_body(img)
        b.image_url = img.url_zoom or img.url_standard
        imgs[i] = b
    end
    full.images = arr(api, imgs)
    local cfs, rules, vids = {}, {}, {}
    for i, c in ipairs(rec.custom_fields or {}) do cfs[i] = { name = c.name, value = c.value } end
    for i, b in ipairs(rec.bulk_pricing_rules or {}) do
        rules[i] = pick(b, { "quantity_min", "quantity_max", "type", "amount" })
    end
    for i, v in ipairs(rec.videos or {}) do
        vids[i] = pick(v, { "title", "description", "sort_order", "type", "video_id" })
    end
    full.custom_fields, full.bulk_pricing_rules, full.videos = arr(api, cfs), arr(api, rules),
        arr(api, vids)
    return full
end

-- ---- writes -----------------------------------------------------------------------------------

-- A run on one product: what differs, what failed, which images could not be fetched.
local function new_run(api, id)
    return { api = api, id = id, fields = {}, seen = {}, failures = {}, images = {} }
end

local function differs(run, what)
    if not run.seen[what] then
        run.seen[what] = true
        run.fields[#run.fields + 1] = what
    end
end

-- The URL an image-fetch refusal names, if that is what the answer is.
local function image_refusal(api, status, body)
    if status ~= 422 then return nil end
    local ok, doc = pcall(api.json.decode, body or "")
    if not ok or type(doc) ~= "table" or type(doc.errors) ~= "table" then return nil end
    for k, v in pairs(doc.errors) do
        if tostring(k):match("image_url$") then return tostring(v) end
    end
end

local function write(run, method, path, body, what)
    local api = run.api
    differs(run, what)
    if api.dry_run then return true end
    local status, answer
    if method == "delete" then
        status, answer = api.delete(path)
    else
        status, answer = api[method](path, body)
    end
    if status >= 200 and status < 300 then return true, answer end
    local refusal = what == "images" and image_refusal(api, status, answer)
    if refusal then
        run.images[#run.images + 1] = ("image at sort_order %s not restored: %s (%s)")
            :format(tostring(body.sort_order), refusal, R.message(api, status, answer))
    else
        run.failures[#run.failures + 1] = ("%s %s %s: %s"):format(method:upper(), what,
            path, R.message(api, status, answer))
    end
    return false, answer
end

-- Makes a live list match the backup's: keyed items compared on their bodies; extra live items
-- deleted first (that frees unique keys), then changed ones updated, then missing ones added.
local function sync_list(run, spec, live_list, want_list)
    local by, extra = {}, {}
    for _, l in ipairs(live_list or {}) do
        local k = spec.key(l)
        if by[k] == nil then by[k] = l else extra[#extra + 1] = l end
    end
    local puts, posts = {}, {}
    for _, w in ipairs(want_list or {}) do
        local k = spec.key(w)
        local l = by[k]
        by[k] = nil
        if l == nil then
            posts[#posts + 1] = w
        else
            local body = spec.body(w)
            local fields = R.differs(l, body)
            if #fields > 0 then
                local part = {}
                for _, f in ipairs(fields) do part[f] = body[f] end
                puts[#puts + 1] = { live = l, want = w, body = part }
            elseif spec.same then
                spec.same(l, w)
            end
        end
    end
    for _, l in pairs(by) do extra[#extra + 1] = l end
    table.sort(extra, function(a, b) return a.id < b.id end)
    for _, l in ipairs(extra) do
        write(run, "delete", spec.path .. "/" .. l.id, nil, spec.what)
        if spec.deleted then spec.deleted(l) end
    end
    for _, u in ipairs(puts) do
        write(run, "put", spec.path .. "/" .. u.live.id, u.body, spec.what)
        if spec.same then spec.same(u.live, u.want) end
    end
    for _, w in ipairs(posts) do
        local ok, answer = write(run, "post", spec.path, spec.create(w), spec.what)
        if ok and answer and spec.created then spec.created(R.data(run.api, answer), w) end
    end
end

local function by_label(v) return v.label end
local function by_name(o) return o.display_name end

local function sync_values(run, path, live_values, want_values, modifier)
    sync_list(run, {
        what = modifier and "modifiers" or "options", path = path .. "/values",
        key = by_label,
        body = function(v) return value_body(v, modifier) end,
        create = function(v) return value_body(v, modifier) end,
    }, live_values, want_values)
end

local function sync_options(run, pid, live, rec)
    local api, base = run.api, P .. "/" .. pid .. "/options"
    local removed = false
    sync_list(run, {
        what = "options", path = base, key = by_name, body = option_body,
        create = function(o)
            local b = option_body(o)
            b.option_values = values_body(api, o.option_values)
            return b
        end,
        same = function(l, w)
            sync_values(run, base .. "/" .. l.id, l.option_values, w.option_values)
        end,
        deleted = function() removed = true end,
    }, live.options, rec.options)
    return removed
end

local function sync_modifiers(run, pid, live, rec)
    local api, base = run.api, P .. "/" .. pid .. "/modifiers"
    sync_list(run, {
        what = "modifiers", path = base, key = by_name, body = modifier_body,
        create = function(m)
            local b = modifier_body(m)
            b.option_values = values_body(api, m.option_values, true)
            return b
        end,
        same = function(l, w)
            sync_values(run, base .. "/" .. l.id, l.option_values, w.option_values, true)
        end,
    }, live.modifiers, rec.modifiers)
end

local function live_variants(run, pid, live, removed)
    if not removed or run.api.dry_run then return live.variants end
    local status, body = run.api.get(P .. "/" .. pid .. "/variants", { limit = 250 })
    if status ~= 200 then return live.variants end
    return R.data(run.api, body)
end

local function sync_variants(run, pid, live, rec, removed)
    local api = run.api
    local with_options = has(rec.options)
    sync_list(run, {
        what = "variants", path = P .. "/" .. pid .. "/variants",
        key = function(v) return combo_key(v.option_values) end,
        body = function(v) return variant_body(api, v, false) end,
        create = function(v) return variant_body(api, v, with_options) end,
    }, live_variants(run, pid, live, removed), rec.variants)
end

local function sync_simple(run, pid, live, rec)
    local base = P .. "/" .. pid
    sync_list(run, {
        what = "images", path = base .. "/images",
        -- A store gives every image it fetches its own URL, so the position identifies it
        -- (a file replaced at the same position is not noticed).
        key = function(i) return tostring(i.sort_order) end,
        body = image_body,
        create = function(i)
            local b = image_body(i)
            b.image_url = i.url_zoom or i.url_standard
            return b
        end,
    }, live.images, rec.images)
    sync_list(run, {
        what = "custom_fields", path = base .. "/custom-fields",
        key = function(c) return tostring(c.name) .. "\0" .. tostring(c.value) end,
        body = function(c) return { name = c.name, value = c.value } end,
        create = function(c) return { name = c.name, value = c.value } end,
    }, live.custom_fields, rec.custom_fields)
    local rule = { "quantity_min", "quantity_max", "type", "amount" }
    sync_list(run, {
        what = "bulk_pricing_rules", path = base .. "/bulk-pricing-rules",
        key = function(b) return tostring(b.quantity_min) .. "-" .. tostring(b.quantity_max) end,
        body = function(b) return pick(b, rule) end,
        create = function(b) return pick(b, rule) end,
    }, live.bulk_pricing_rules, rec.bulk_pricing_rules)
    local video = { "title", "description", "sort_order", "type", "video_id" }
    sync_list(run, {
        what = "videos", path = base .. "/videos",
        key = function(v) return tostring(v.video_id) end,
        body = function(v) return pick(v, { "title", "description", "sort_order" }) end,
        create = function(v) return pick(v, video) end,
    }, live.videos, rec.videos)
end

-- Every sub-resource of a live product made to match the backup's record. After a create,
-- only what the create could not carry (images that failed stay reported, not retried).
local function sync_subs(run, live, rec, after_create)
    local removed = sync_options(run, live.id, live, rec)
    sync_variants(run, live.id, live, rec, removed)
    sync_modifiers(run, live.id, live, rec)
    if not after_create then sync_simple(run, live.id, live, rec) end
end

local function finish(run, outcome, note)
    local api = run.api
    local detail = {}
    if note ~= "" then detail[#detail + 1] = note end
    for _, msg in ipairs(run.images) do detail[#detail + 1] = msg end
    if #run.failures > 0 then
        local head = outcome == "created" and ("created as product %s, but "):format(run.new_id)
            or ""
        return api.report(run.id, "failed", head .. table.concat(run.failures, "; "))
    end
    return api.report(run.id, outcome, table.concat(detail, "; "), run.fields)
end

local function update(api, item, body, note)
    local live, rec = item.live, item.rec
    local run = new_run(api, rec.id)
    api.remember("products", rec.id, live.id)
    local fields = R.differs(live, body)
    if #fields > 0 then
        local part = {}
        for _, f in ipairs(fields) do part[f] = body[f] end
        if not api.dry_run then
            local status, answer = api.put(P .. "/" .. live.id, part)
            if status < 200 or status >= 300 then
                return api.report(rec.id, "failed", R.message(api, status, answer))
            elseif status == 207 then
                run.failures[#run.failures + 1] = "the store saved the product in part: " ..
                    R.message(api, status, answer)
            end
        end
        for _, f in ipairs(fields) do differs(run, f) end
    end
    sync_subs(run, live, rec)
    return finish(run, #run.fields > 0 and "updated" or "unchanged", note)
end

-- The live product that holds a natural key a create collided with, or nil.
local function holder(api, rec)
    if rec.sku and rec.sku ~= "" then
        local found = fetch(api, { ["sku:in"] = rec.sku })
        if found[1] then return found[1] end
    end
    local found = fetch(api, { name = rec.name })
    return found[1]
end

-- Drops references the store says do not exist; returns what was dropped, or nil.
local function drop_missing(api, body, answer)
    local ok, doc = pcall(api.json.decode, answer or "")
    local errs = ok and type(doc) == "table" and type(doc.errors) == "table" and doc.errors or {}
    local dropped = {}
    if errs.brand_id and body.brand_id and body.brand_id ~= 0 then
        dropped[#dropped + 1] = "brand " .. tostring(body.brand_id)
        body.brand_id = 0
    end
    if errs.categories and has(body.categories) then
        local status, got = api.get("/v3/catalog/trees/categories",
            { ["category_id:in"] = csv(body.categories), limit = 250 })
        local there = {}
        if status == 200 then
            for _, c in ipairs(R.data(api, got) or {}) do there[c.category_id] = true end
        end
        local keep = {}
        for _, c in ipairs(body.categories) do
            if there[c] then keep[#keep + 1] = c else dropped[#dropped + 1] = "category " .. c end
        end
        body.categories = arr(api, keep)
    end
    return #dropped > 0 and dropped or nil
end

local function create(api, item, body, note)
    local rec = item.rec
    local run = new_run(api, rec.id)
    if api.dry_run then return api.report(rec.id, "created", note) end
    local full = create_body(api, rec, body)
    local status, answer
    for _ = 1, #full.images + 2 do
        status, answer = api.post(P, full)
        local refusal = image_refusal(api, status, answer)
        local dropped = status == 409 and drop_missing(api, full, answer)
        if refusal then
            local kept, gone = {}, false
            for _, img in ipairs(full.images) do
                if not gone and refusal:find(img.image_url, 1, true) then
                    gone = true
                    run.images[#run.images + 1] = ("image at sort_order %s not restored: %s")
                        :format(tostring(img.sort_order), refusal)
                else
                    kept[#kept + 1] = img
                end
            end
            if not gone then break end
            full.images = arr(api, kept)
        elseif dropped then
            local what = "references not found in the target store: " ..
                table.concat(dropped, ", ")
            note = note == "" and what or note .. "; " .. what
        else
            break
        end
    end
    if status == 409 then
        -- The sku, name or custom URL is taken: that product is this one; update it.
        local live = holder(api, rec)
        if live then
            item.live = live
            return update(api, item, body, note)
        end
    end
    if status < 200 or status >= 300 then
        return api.report(rec.id, "failed", R.message(api, status, answer))
    end
    if status == 207 then
        -- Saved, but not all of it (a custom URL, the stock): the report line says what.
        local part = "the store saved it in part: " .. R.message(api, status, answer)
        note = note == "" and part or note .. "; " .. part
    end
    local live = R.data(api, answer)
    run.new_id = live.id
    api.remember("products", rec.id, live.id)
    -- What the create could not carry: option settings, value data, modifiers.
    sync_subs(run, live, rec, true)
    run.fields = {}
    return finish(run, "created", note)
end

local function restore_one(api, item)
    local body, missing = product_body(api, item.rec)
    local note = #missing > 0 and ("references not found in the target store: " ..
        table.concat(missing, ", ")) or ""
    if item.live then return update(api, item, body, note) end
    return create(api, item, body, note)
end

local function restore_write(api, batch)
    local items = {}
    for i, b in ipairs(batch) do items[i] = { rec = b.rec } end
    match(api, items)
    for _, item in ipairs(items) do
        local ok, err = pcall(restore_one, api, item)
        if not ok then api.report(item.rec.id, "failed", tostring(err)) end
    end
end

return {
    contract = 1,
    type = "products",
    version = "1.1.0",
    scope = "store_v2_products_read_only",
    depends = { "brands", "categories", "tax_classes" },
    natural_key = { "sku", "custom_url.url" },
    list = {
        api = "v3",
        path = "/catalog/products",
        paging = "keyset",
        limit = 10,
        query = {
            include = INCLUDE,
            sort = "id",
            direction = "asc",
        },
        keyset = {
            after = "id:greater",
            upto = "id:max",
            newest = { sort = "id", direction = "desc" },
        },
    },
    restore = {
        batch = 10,
        parallel = 2,
        -- what --only brings along when the target lacks it
        needs = { brand_id = "brands", categories = "categories", tax_class_id = "tax_classes" },
        write = restore_write,
    },
}
