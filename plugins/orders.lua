-- orders: v2 orders with their products, shipping addresses, coupons and
-- shipments. The list gives link objects for the first three; the backup
-- holds the fetched arrays under the same member names, and adds
-- `shipments`.
--
-- Child calls are skipped where the order itself shows there is nothing to
-- fetch (the member is then []): no products when items_total is 0, no
-- addresses when shipping_address_count is 0, no shipments when
-- items_shipped is 0. Coupons are always fetched: no member of the order
-- says whether one was used (a free-shipping coupon can leave
-- coupon_discount at 0). So an order costs 2 to 4 requests.
local function positive(v)
    return tonumber(v) ~= nil and tonumber(v) > 0
end

return {
    contract = 1,
    type = "orders",
    version = "1.0.0",
    scope = "store_v2_orders_read_only",
    depends = { "customers", "products" },
    natural_key = { "external_order_id" },
    list = {
        api = "v2",
        path = "/orders",
        paging = "keyset",
        limit = 250,
        query = { sort = "id:asc" },
        keyset = {
            from = "min_id",
            upto = "max_id",
            newest = { sort = "id:desc" },
        },
    },
    children = function(order)
        local base = "/orders/" .. math.floor(order.id)
        local function call(member, needed)
            if needed then
                return { member = member, path = base .. "/" .. member }
            end
            return { member = member, empty = true }
        end
        return {
            call("products", positive(order.items_total)),
            call("shipping_addresses", positive(order.shipping_address_count)),
            call("coupons", true),
            call("shipments", positive(order.items_shipped)),
        }
    end,
}
