-- The demo sale: five items of 1,000 each. Tests use their own item ids (>= 1000).
INSERT INTO items (id, name, initial_stock, stock) VALUES
    (1, 'Phone X (flash sale)', 1000, 1000),
    (2, 'Laptop Air (flash sale)', 1000, 1000),
    (3, 'Headphones Pro (flash sale)', 1000, 1000),
    (4, 'Watch S (flash sale)', 1000, 1000),
    (5, 'Tablet M (flash sale)', 1000, 1000);
