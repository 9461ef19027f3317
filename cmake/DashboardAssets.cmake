# evald_dashboard_assets(<target>): gives <target> its FindDashboardAsset (daemon/dashboard/assets.h).
# When the web build exists (EVALD_WEB_DIR, default <source>/build-web, made by scripts/build with
# npm from daemon/dashboard/web), its files are embedded by cmake/EmbedDashboard.cmake into one
# generated .cc; otherwise daemon/dashboard/assets_fallback.cc serves a page saying it was not
# built. The glob is CONFIGURE_DEPENDS, so a web build made after configuring is picked up by the
# next ninja run. One web build serves every build dir (normal, ASan): npm runs once per checkout.
set(EVALD_WEB_DIR "${PROJECT_SOURCE_DIR}/build-web" CACHE PATH
    "The dashboard's vite build output to embed into evald (empty or missing: fallback page)")

function(evald_dashboard_assets target)
  set(fallback "${PROJECT_SOURCE_DIR}/daemon/dashboard/assets_fallback.cc")
  file(GLOB_RECURSE web_files CONFIGURE_DEPENDS "${EVALD_WEB_DIR}/*")
  # The fallback may also be listed with the target's sources; only one definition may link.
  get_target_property(sources ${target} SOURCES)
  list(FILTER sources EXCLUDE REGEX "dashboard/assets_fallback\\.cc$")
  set_property(TARGET ${target} PROPERTY SOURCES ${sources})
  if(EXISTS "${EVALD_WEB_DIR}/index.html")
    set(out "${CMAKE_CURRENT_BINARY_DIR}/dashboard_assets.cc")
    add_custom_command(
      OUTPUT "${out}"
      COMMAND "${CMAKE_COMMAND}" "-DWEB_DIR=${EVALD_WEB_DIR}" "-DOUT=${out}"
              -P "${PROJECT_SOURCE_DIR}/cmake/EmbedDashboard.cmake"
      DEPENDS ${web_files} "${PROJECT_SOURCE_DIR}/cmake/EmbedDashboard.cmake"
      COMMENT "Embedding the dashboard from ${EVALD_WEB_DIR}"
      VERBATIM)
    target_sources(${target} PRIVATE "${out}")
    message(STATUS "dashboard: embedding ${EVALD_WEB_DIR}")
  else()
    target_sources(${target} PRIVATE "${fallback}")
    message(STATUS "dashboard: ${EVALD_WEB_DIR} not built, evald serves the fallback page")
  endif()
endfunction()
