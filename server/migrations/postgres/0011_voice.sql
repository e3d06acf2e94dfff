-- Voice tokens: a call's login waits on a transaction like a push's, so the transaction says
-- which it is (a device only ever sees `push` ones), holds the displayed code as a keyed MAC
-- (never the code) and the voice token called, and counts the wrong codes keyed during the call.

ALTER TABLE push_transactions ADD COLUMN channel TEXT NOT NULL DEFAULT 'push';
ALTER TABLE push_transactions ADD COLUMN code_mac TEXT;
ALTER TABLE push_transactions ADD COLUMN tries BIGINT NOT NULL DEFAULT 0;
ALTER TABLE push_transactions ADD COLUMN token_serial TEXT;
