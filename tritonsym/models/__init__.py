"""Networks written with the Symbol API that ``tritonsym train`` trains: the decoder-only
transformer (``transformer``) and its tasks and text data (``sequences``)."""
