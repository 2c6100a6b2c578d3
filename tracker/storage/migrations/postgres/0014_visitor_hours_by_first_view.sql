-- `rollup_visitors` keyed by the id of the visitor's first page view in the hour, not by
-- the visitor id: the catch-up's new rows then go to the end of their hour instead of
-- into random pages of it (a step of 2,000 new visitors dirtied hundreds of pages, each
-- written again at commit), and the table holds no visitor id at all. Each row's first
-- page view is found from the events; a row without one (none can be left: a delete
-- takes the rows of its page views) is dropped.
CREATE TABLE rollup_visitor_hours (
    site_id   bigint NOT NULL,
    hour      bigint NOT NULL,                 -- ms since the epoch / 3,600,000 (UTC)
    first_id  bigint NOT NULL,                 -- events.id of the visitor's first page view in it
    prev_hour bigint NOT NULL,                 -- the visitor's previous such hour, or -1
    PRIMARY KEY (site_id, hour, first_id)
);
INSERT INTO rollup_visitor_hours (site_id, hour, first_id, prev_hour)
    SELECT site_id, hour, first_id, prev_hour FROM (
        SELECT r.site_id, r.hour, r.prev_hour, (SELECT MIN(e.id) FROM events e
            WHERE e.vid = r.vid AND e.at >= r.hour * 3600000 AND e.at < (r.hour + 1) * 3600000
            AND e.site_id = r.site_id AND e.type = 'pageview') AS first_id
        FROM rollup_visitors r) AS found
    WHERE first_id IS NOT NULL;
DROP TABLE rollup_visitors;
ALTER TABLE rollup_visitor_hours RENAME TO rollup_visitors;
ALTER INDEX rollup_visitor_hours_pkey RENAME TO rollup_visitors_pkey;
