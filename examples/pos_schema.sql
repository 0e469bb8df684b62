-- A point-of-sale database as POS systems lay it out: articles with their EAN and VAT code,
-- VAT rates in their own table, gross shelf prices in whole cents, stores, and stock as one
-- row per (article, store). The data matches examples/pos_export.csv (KA-1001..KA-1014,
-- stores berlin and hamburg).
--
-- Plain SQL that runs unchanged on SQLite, PostgreSQL and MariaDB/MySQL. Without a server:
--
--   python -m omnisync_connectors.sql.load examples/pos_schema.sql examples/pos.db
--
-- then `connector: sql` with url sqlite:///examples/pos.db (see README, "SQL databases").

CREATE TABLE vat_rates (
    code VARCHAR(16) NOT NULL PRIMARY KEY,
    percent DECIMAL(5, 2) NOT NULL
);

CREATE TABLE articles (
    id INTEGER NOT NULL PRIMARY KEY,
    sku VARCHAR(32) NOT NULL UNIQUE,
    name VARCHAR(200) NOT NULL,
    ean VARCHAR(14),
    vat_code VARCHAR(16) NOT NULL,
    FOREIGN KEY (vat_code) REFERENCES vat_rates (code)
);

CREATE TABLE prices (
    article_id INTEGER NOT NULL,
    amount_cents INTEGER NOT NULL CHECK (amount_cents >= 0),
    currency CHAR(3) NOT NULL,
    PRIMARY KEY (article_id, currency),
    FOREIGN KEY (article_id) REFERENCES articles (id)
);

CREATE TABLE stores (
    id INTEGER NOT NULL PRIMARY KEY,
    code VARCHAR(32) NOT NULL UNIQUE
);

CREATE TABLE stock (
    article_id INTEGER NOT NULL,
    store_id INTEGER NOT NULL,
    qty INTEGER NOT NULL,
    PRIMARY KEY (article_id, store_id),
    FOREIGN KEY (article_id) REFERENCES articles (id),
    FOREIGN KEY (store_id) REFERENCES stores (id)
);

INSERT INTO vat_rates (code, percent) VALUES
    ('standard', 19.00),
    ('reduced', 7.00);

INSERT INTO articles (id, sku, name, ean, vat_code) VALUES
    (1, 'KA-1001', 'Kaffeemühle „Bella“ Edelstahl', '4006381333931', 'standard'),
    (2, 'KA-1002', 'Espressokocher Alu 6 Tassen', '8006363011822', 'standard'),
    (3, 'KA-1003', 'Milchaufschäumer Induktion', '4008146024519', 'standard'),
    (4, 'KA-1004', 'Siebträger-Espressomaschine Pro', '4015671001252', 'standard'),
    (5, 'KA-1005', 'Kaffeebohnen Crema 1 kg', '4006067084201', 'reduced'),
    (6, 'KA-1006', 'Kaffeebohnen Espresso 500 g', '4006067084218', 'reduced'),
    (7, 'KA-1007', 'Entkalker 3er-Pack', '4008146010017', 'standard'),
    (8, 'KA-1008', 'Kaffeetasse Porzellan 6er-Set', '4006381444446', 'standard'),
    (9, 'KA-1009', 'Filterpapier Gr. 4, 100 Stück', '4006508201540', 'standard'),
    (10, 'KA-1010', 'Thermoskanne 1 l', '4006381555555', 'standard'),
    (11, 'KA-1011', 'Milchkännchen Edelstahl 350 ml', '4006381666664', 'standard'),
    (12, 'KA-1012', 'Reinigungstabletten 100 Stück', '4008146777772', 'standard'),
    (13, 'KA-1013', 'Kaffeedose Vakuum 500 g', '4006381888881', 'standard'),
    (14, 'KA-1014', 'Handmühle Keramikmahlwerk', '4006381999990', 'standard');

-- Gross shelf prices (what the customer pays), in cents.
INSERT INTO prices (article_id, amount_cents, currency) VALUES
    (1, 4999, 'EUR'),
    (2, 2999, 'EUR'),
    (3, 7999, 'EUR'),
    (4, 129899, 'EUR'),
    (5, 1799, 'EUR'),
    (6, 999, 'EUR'),
    (7, 1299, 'EUR'),
    (8, 3699, 'EUR'),
    (9, 299, 'EUR'),
    (10, 2999, 'EUR'),
    (11, 1499, 'EUR'),
    (12, 999, 'EUR'),
    (13, 1999, 'EUR'),
    (14, 3999, 'EUR');

INSERT INTO stores (id, code) VALUES
    (1, 'berlin'),
    (2, 'hamburg');

INSERT INTO stock (article_id, store_id, qty) VALUES
    (1, 1, 3), (1, 2, 2),
    (2, 1, 5), (2, 2, 5),
    (3, 1, 0), (3, 2, 1),
    (4, 1, 1), (4, 2, 0),
    (5, 1, 10), (5, 2, 8),
    (6, 1, 12), (6, 2, 12),
    (7, 1, 4), (7, 2, 4),
    (8, 1, 2), (8, 2, 2),
    (9, 1, 0), (9, 2, 0),
    (10, 1, 3), (10, 2, 1),
    (11, 1, 2), (11, 2, 4),
    (12, 1, 6), (12, 2, 6),
    (13, 1, 1), (13, 2, 1),
    (14, 1, 0), (14, 2, 0);
