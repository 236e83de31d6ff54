"""data/sources/binance"""
