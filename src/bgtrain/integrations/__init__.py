"""Games beyond Gymnasium: StarCraft II (``bgtrain.integrations.sc2``, extra ``[sc2]``)."""
