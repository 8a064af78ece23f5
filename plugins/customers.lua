-- customers: with addresses, attribute values, form fields and store
-- credit, all through include= on 250-record cursor pages (the API's
-- preferred paging for customers): 1/250 request per customer, no child
-- calls. Passwords cannot be read through the API, so none are stored.
return {
    contract = 1,
    type = "customers",
    version = "1.0.0",
    scope = "store_v2_customers_read_only",
    natural_key = { "email" },
    list = {
        api = "v3",
        path = "/customers",
        paging = "cursor",
        limit = 250,
        query = { include = "addresses,storecredit,attributes,formfields" },
    },
}
