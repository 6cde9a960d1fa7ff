// gh.metric: the script's declared counters and gauges (lua/script_metrics.h).
#include <lua.hpp>

#include "lua/api_internal.h"
#include "lua/script_metrics.h"

namespace gatehouse::lua {
namespace {

constexpr size_t kMaxLabelValueBytes = 256;

const ScriptMetrics* metricsOf(lua_State* L) {
  return static_cast<const ScriptMetrics*>(lua_touserdata(L, lua_upvalueindex(1)));
}

// The metric named by argument 1, of `type`; raises an error when none is declared.
ScriptMetric& declared(lua_State* L, MetricSpec::Type type) {
  const char* name = luaL_checkstring(L, 1);
  const ScriptMetrics* all = metricsOf(L);
  ScriptMetric* m = all != nullptr ? all->find(name) : nullptr;
  if (m == nullptr || m->spec().type != type) {
    luaL_error(L, "no %s '%s' is declared in the policy's metrics",
               type == MetricSpec::Type::kCounter ? "counter" : "gauge", name);
  }
  return *m;
}

// The series key of the labels table at `arg` (absent labels are empty values).
std::string seriesKey(lua_State* L, const ScriptMetric& m, int arg) {
  std::string key;
  if (!lua_isnoneornil(L, arg)) {
    luaL_checktype(L, arg, LUA_TTABLE);
    lua_pushnil(L);
    while (lua_next(L, arg) != 0) {  // every key must be a declared label
      bool known = false;
      if (lua_type(L, -2) == LUA_TSTRING) {
        for (const auto& label : m.spec().labels)
          known = known || label == lua_tostring(L, -2);
      }
      if (!known) luaL_argerror(L, arg, "a label the metric does not declare");
      if (!lua_isstring(L, -1)) luaL_argerror(L, arg, "label values are strings");
      lua_pop(L, 1);
    }
  }
  for (size_t i = 0; i < m.spec().labels.size(); ++i) {
    if (i > 0) key.push_back('\0');
    if (lua_isnoneornil(L, arg)) continue;
    lua_getfield(L, arg, m.spec().labels[i].c_str());
    size_t n = 0;
    const char* v = lua_tolstring(L, -1, &n);
    if (v != nullptr) {
      if (n > kMaxLabelValueBytes) luaL_argerror(L, arg, "a label value over 256 bytes");
      key.append(v, n);
    }
    lua_pop(L, 1);
  }
  return key;
}

// gh.metric.incr(name, [n = 1], [labels]): true, or false and a reason (too many series).
int incr(lua_State* L) {
  ScriptMetric& m = declared(L, MetricSpec::Type::kCounter);
  const double n = luaL_optnumber(L, 2, 1);
  if (!(n >= 0)) return luaL_argerror(L, 2, "a counter only goes up");
  std::atomic<double>* v = m.series(seriesKey(L, m, 3));
  if (v == nullptr) {
    lua_pushboolean(L, 0);
    lua_pushliteral(L, "too many series");
    return 2;
  }
  v->fetch_add(n, std::memory_order_relaxed);
  lua_pushboolean(L, 1);
  return 1;
}

// gh.metric.set(name, value, [labels]): a gauge's value.
int set(lua_State* L) {
  ScriptMetric& m = declared(L, MetricSpec::Type::kGauge);
  const double value = luaL_checknumber(L, 2);
  std::atomic<double>* v = m.series(seriesKey(L, m, 3));
  if (v == nullptr) {
    lua_pushboolean(L, 0);
    lua_pushliteral(L, "too many series");
    return 2;
  }
  v->store(value, std::memory_order_relaxed);
  lua_pushboolean(L, 1);
  return 1;
}

int install(lua_State* L) {
  auto* metrics = static_cast<const ScriptMetrics*>(lua_touserdata(L, 1));
  lua_getglobal(L, "gh");
  registerMetricApi(L, metrics);
  lua_pop(L, 1);
  return 0;
}

}  // namespace

void registerMetricApi(lua_State* L, const ScriptMetrics* metrics) {
  lua_newtable(L);
  const luaL_Reg fns[] = {{"incr", incr}, {"set", set}};
  for (const auto& fn : fns) {
    lua_pushlightuserdata(L, const_cast<ScriptMetrics*>(metrics));
    lua_pushcclosure(L, fn.func, 1);
    lua_setfield(L, -2, fn.name);
  }
  lua_setfield(L, -2, "metric");
}

bool installMetrics(Vm& vm, const ScriptMetrics* metrics) {
  return lua_cpcall(vm.state(), install, const_cast<ScriptMetrics*>(metrics)) == 0;
}

}  // namespace gatehouse::lua
