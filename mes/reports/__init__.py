"""Reports and dashboards: WIP, yield, rejects, cycle time, holds, equipment (E10) and
delivery, computed in SQL by `services` for the pages, the JSON/CSV API and the portal."""
