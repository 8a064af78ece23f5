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

-- Restore: a theme is matched by uuid (same store), the id map, then name.
-- One the store already holds is left as it is (the API cannot compare or
-- replace a bundle). A missing one is uploaded from the backup's zip, which
-- exists only for the theme that was active; a store keeps at most 20
-- custom themes, and the API's 409 says so. The backup's active theme is
-- activated only with --activate (its first variation).
local UPLOAD_TRIES = 10

local function themes_of(api)
    local status, body = api.get("/v3/themes")
    if status ~= 200 then
        error(("listing themes: the API answered %d"):format(status), 0)
    end
    return api.json.decode(body).data or {}
end

local function wait_job(api, job, name)
    for _ = 1, MAX_POLLS do
        local st, jb = api.get("/v3/themes/jobs/" .. job)
        if st ~= 200 then
            error(("theme %s: the upload job answered %d"):format(name, st), 0)
        end
        local data = api.json.decode(jb).data
        if data.status == "COMPLETED" then return data.result and data.result.theme_id end
        if data.status == "FAILED" then
            local why = data.errors and data.errors[1] and data.errors[1].message or "no reason given"
            error(("theme %s: the upload job failed: %s"):format(name, why), 0)
        end
        api.sleep(POLL_MS)
    end
    error(("theme %s: the upload job did not finish in %d s"):format(name, MAX_POLLS * POLL_MS / 1000), 0)
end

-- Uploads the backup's zip; returns the new theme's uuid, or nil and why
-- it was not uploaded (skipped), or raises with the API's answer (failed).
local function upload(api, rec)
    local object = "attachments/themes/" .. rec.uuid .. ".zip"
    for _ = 1, UPLOAD_TRIES do
        local status, body = api.upload("/v3/themes", "file", object)
        if status == nil then
            return nil, ("the backup holds no bundle for it (%s); only the active theme's zip "
                .. "is downloaded"):format(body)
        end
        local ok, doc = pcall(api.json.decode, body)
        if status == 201 or status == 200 then return wait_job(api, doc.job_id, rec.name) end
        local title = ok and type(doc) == "table" and (doc.title or "") or ""
        if status ~= 409 or not title:lower():find("in progress", 1, true) then
            error(("theme %s: upload refused: HTTP %d: %s"):format(rec.name, status, title), 0)
        end
        api.sleep(POLL_MS) -- another upload is running: one at a time
    end
    error(("theme %s: another upload kept running"):format(rec.name), 0)
end

local function activate(api, theme)
    local v = theme.variations and theme.variations[1]
    if v == nil then error(("theme %s has no variation to activate"):format(theme.name), 0) end
    local status = api.post("/v3/themes/actions/activate",
        { variation_id = v.uuid, which = "last_activated" })
    if status ~= 204 and status ~= 200 then
        error(("activating theme %s: the API answered %d"):format(theme.name, status), 0)
    end
end

local function restore_one(api, item, live)
    local rec, id = item.rec, item.id
    local found
    for _, t in ipairs(live) do
        if api.same_store and t.uuid == rec.uuid then found = t end
    end
    local mapped = api.map("themes", id)
    for _, t in ipairs(live) do
        if found == nil and mapped ~= nil and t.uuid == mapped then found = t end
    end
    for _, t in ipairs(live) do
        if found == nil and t.name == rec.name then found = t end
    end
    local wants_active = rec.is_active == true
    if found ~= nil then
        api.remember("themes", id, found.uuid)
        if not wants_active or found.is_active then return api.report(id, "unchanged") end
        if not api.activate then
            return api.report(id, "kept", "active in the backup but not in the store; "
                .. "o7 restore --activate makes it active", { "is_active" })
        end
        if api.dry_run then return api.report(id, "updated", "", { "is_active" }) end
        activate(api, found)
        return api.report(id, "updated", "activated", { "is_active" })
    end
    if api.dry_run then return api.report(id, "created") end
    local uuid, why = upload(api, rec)
    if uuid == nil then return api.report(id, "skipped", why) end
    api.remember("themes", id, uuid)
    if wants_active and api.activate then
        for _, t in ipairs(themes_of(api)) do
            if t.uuid == uuid then activate(api, t) end
        end
        return api.report(id, "created", "uploaded and activated")
    end
    return api.report(id, "created", wants_active and
        "uploaded, not activated (o7 restore --activate makes it active)" or "uploaded")
end

return {
    contract = 1,
    type = "themes",
    version = "1.0.0",
    scope = "store_themes_read_only",
    natural_key = { "name" },
    -- For the token check: listing themes is the cheapest call.
    list = { api = "v3", path = "/themes", paging = "page", limit = 250, key = "uuid" },
    restore = {
        batch = 1,
        -- the API takes one upload at a time
        parallel = 1,
        write = function(api, batch)
            local live = themes_of(api)
            for _, item in ipairs(batch) do
                local ok, err = pcall(restore_one, api, item, live)
                if not ok then api.report(item.id, "failed", tostring(err)) end
            end
        end,
    },
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
