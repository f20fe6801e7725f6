"""The checker core: rise/fall and retry arithmetic, process matching; pure, unit-tested without IO."""
