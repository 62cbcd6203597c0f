"""Paper trading: the backtest kernel driven in wall-clock time."""
