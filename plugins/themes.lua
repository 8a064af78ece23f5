-- themes: every theme's record, and the active theme's zip as an
-- attachment. The zip comes through the API's download job: start it, poll
-- it, then fetch its signed link at once (the link lives 60 seconds).
local POLL_MS = 1000
local MAX_POLLS = 300

local function download(api, theme)
    local body = api.json.encode({ which = "last_activated" })
    local status, answer = api.post("/v3/themes/" .. theme.uuid .. "/actions/download", body)
    if status ~= 200 and status ~= 201 then
        error(("starting the download of theme %s: the API answered %d"):format(theme.name, status))
    end
    local job = api.json.decode(answer).job_id
    for _ = 1, MAX_POLLS do
        local st, jb = api.get("/v3/themes/jobs/" .. job)
        if st ~= 200 then
            error(("theme %s: the download job answered %d"):format(theme.name, st))
        end
        local data = api.json.decode(jb).data
        if data.status == "COMPLETED" then
            local url = data.result and data.result.download_url
            if type(url) ~= "string" then
                error(("theme %s: the finished job gave no download_url"):format(theme.name))
            end
            local object, err = api.attach(theme.uuid .. ".zip", url)
            if not object then
                error(("theme %s: %s"):format(theme.name, err))
            end
            return
        elseif data.status == "FAILED" then
            local why = data.errors and data.errors[1] and data.errors[1].message or "no reason given"
            error(("theme %s: the download job failed: %s"):format(theme.name, why))
        end
        api.sleep(POLL_MS)
    end
    error(("theme %s: the download job did not finish in %d s")
        :format(theme.name, MAX_POLLS * POLL_MS / 1000))
end

return {
    contract = 1,
    type = "themes",
    version = "1.0.0",
    scope = "store_themes_read_only",
    natural_key = { "name" },
    -- For the token check: listing themes is the cheapest call.
    list = { api = "v3", path = "/themes", paging = "page", limit = 250 },
    fetch = function(api)
        local status, body = api.get("/v3/themes")
        if status ~= 200 then
            error(("listing themes: the API answered %d"):format(status))
        end
        for _, raw in ipairs(api.records(body)) do
            api.emit(raw)
            local theme = api.json.decode(raw)
            if theme.is_active then
                download(api, theme)
            end
        end
    end,
}
