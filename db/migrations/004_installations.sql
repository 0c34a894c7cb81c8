-- Workspaces that installed the app through OAuth (multi-workspace mode). The row holds the workspace's bot token:
-- it is read to act for the workspace and never logged.
CREATE TABLE installations (
  team_id               TEXT NOT NULL,
  enterprise_id         TEXT NOT NULL DEFAULT '',
  is_enterprise_install INTEGER NOT NULL DEFAULT 0,
  bot_token             TEXT,
  bot_user_id           TEXT,
  installation_json     TEXT NOT NULL,
  installed_at          TEXT NOT NULL,
  PRIMARY KEY (team_id, enterprise_id)
);
