-- The watch list kept from the command line (`mtasts watch`, issue 18), for deployments without a Slack app. Its rows
-- are subscriptions of the team 'watch-list' (no Slack workspace has that id: theirs start with T or E), whose
-- channel_id is a destination of their own: 'log' (each alert written to the app's log) or 'webhook:NAME' (a name
-- in MTASTS_WEBHOOKS). The outbox copies team and channel, so an alert's row says where it goes.
-- @sqlite
CREATE TRIGGER watch_list_destination_insert BEFORE INSERT ON subscriptions
  WHEN NEW.team_id = 'watch-list' AND NEW.channel_id <> 'log' AND NEW.channel_id NOT GLOB 'webhook:?*'
BEGIN
  SELECT RAISE(ABORT, 'a watch-list destination is log or webhook:NAME');
END;

CREATE TRIGGER watch_list_destination_update BEFORE UPDATE OF team_id, channel_id ON subscriptions
  WHEN NEW.team_id = 'watch-list' AND NEW.channel_id <> 'log' AND NEW.channel_id NOT GLOB 'webhook:?*'
BEGIN
  SELECT RAISE(ABORT, 'a watch-list destination is log or webhook:NAME');
END;
-- @end
-- @postgres
CREATE FUNCTION watch_list_destination() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF NEW.team_id = 'watch-list' AND NEW.channel_id <> 'log' AND NEW.channel_id NOT LIKE 'webhook:_%' THEN
    RAISE EXCEPTION 'a watch-list destination is log or webhook:NAME';
  END IF;
  RETURN NEW;
END $$;

CREATE TRIGGER watch_list_destination BEFORE INSERT OR UPDATE OF team_id, channel_id ON subscriptions
  FOR EACH ROW EXECUTE FUNCTION watch_list_destination();
-- @end
