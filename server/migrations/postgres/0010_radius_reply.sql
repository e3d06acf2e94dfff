-- The attributes a user's RADIUS Access-Accepts carry (Class, Filter-Id, a vendor's…), as the
-- JSON array the admin API shows; NULL for none.

ALTER TABLE users ADD COLUMN radius_reply TEXT;
