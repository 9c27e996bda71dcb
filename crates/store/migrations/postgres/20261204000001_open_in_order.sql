-- Open requests are read in request order (`ORDER BY requested_at, id`):
-- by the pages' snapshot across every resource, by each resource's
-- reconciler on its own. Indexes in that order let both read rows as the
-- index holds them instead of sorting every open row first: at 10,000
-- open requests SQLite sorted them in memory (up to the page cache's
-- size) and in a temporary file on every read, before the first row.
DROP INDEX requests_open_by_resource;
CREATE INDEX requests_open_by_resource ON requests (resource, requested_at, id)
    WHERE status IN ('pending', 'active');
CREATE INDEX requests_open_in_order ON requests (requested_at, id)
    WHERE status IN ('pending', 'active');
