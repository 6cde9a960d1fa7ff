-- Issue 19's realistic script (bench/run-policies.sh's lua case, bench/callgrind.sh with
-- ROUTE_POLICIES): one header read, one dictionary lookup, two headers set.
function on_request_headers()
  local tenant = gh.req.get_header("x-tenant")
  local plan = gh.shared.get("plan:" .. tenant)
  if not plan then
    plan = "standard"
    gh.shared.set("plan:" .. tenant, plan)
  end
  gh.req.set_header("x-tenant-plan", plan)
  gh.req.set_header("x-tenant-checked", "1")
end
