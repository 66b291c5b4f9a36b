"""What every page shares: form handling (forms) and paging (pager). Pages import these,
their domain's services and schemas, never mes.api."""
