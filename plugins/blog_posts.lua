-- blog_posts: every blog post, read from the v2 list 250 at a time: one request per
-- 250 posts, plus the count before and after. The list record is complete (body
-- and tags included), so no include and no child call. The API documents no id
-- filter for posts, so they page by number; the count taken before and after the
-- scan catches most shifts.
--
-- Restore: one post a call (the API has no batch), matched by id, the id map,
-- then url. The API reads published_date as an object but takes it only as
-- RFC-2822 text, so both sides are compared in that form.
local R = require("_restore")

local DAYS = { "Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat" }
local MONTHS = { "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov",
    "Dec" }

-- Day of the week (0 = Sunday) of a Gregorian date.
local function weekday(y, m, d)
    local t = { 0, 3, 2, 5, 0, 3, 5, 1, 4, 6, 2, 4 }
    if m < 3 then y = y - 1 end
    return (y + math.floor(y / 4) - math.floor(y / 100) + math.floor(y / 400) + t[m] + d) % 7
end

-- "2022-03-16T11:39:42+00:00" -> "Wed, 16 Mar 2022 11:39:42 +0000"; nil when
-- the text is not such a date.
local function rfc2822(iso)
    if type(iso) ~= "string" then return nil end
    local y, mo, d, h, mi, s, sign, zh, zm =
        iso:match("^(%d%d%d%d)-(%d%d)-(%d%d)T(%d%d):(%d%d):(%d%d)([%+%-])(%d%d):?(%d%d)$")
    if y == nil then return nil end
    y, mo, d = tonumber(y), tonumber(mo), tonumber(d)
    return ("%s, %02d %s %04d %s:%s:%s %s%s%s"):format(DAYS[weekday(y, mo, d) + 1], d,
        MONTHS[mo], y, h, mi, s, sign, zh, zm)
end

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
    restore = R.one_by_one {
        type = "blog_posts",
        path = "/v2/blog/posts",
        item = "/v2/blog/posts/%s",
        -- server-set: the preview link and summary follow url and body
        strip = { "id", "preview_url", "summary", "published_date_iso8601" },
        prepare = function(_, body, rec)
            body.published_date = rfc2822(rec.published_date_iso8601)
            return body
        end,
        view = function(_, live)
            local v = R.copy(live)
            v.published_date = rfc2822(live.published_date_iso8601)
            return v
        end,
        lookup = function(api, body)
            if type(body.url) ~= "string" or body.url == "" then return nil end
            return R.find(api, "/v2/blog/posts", { url = body.url })
        end,
    },
}
