"""Publishing KPIs: publications under the host's policies (with four-eyes requests), restatements of
published numbers that changed, and period-close snapshots. The outputs themselves live in storage
(`apps.storage.published`)."""
