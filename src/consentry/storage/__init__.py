"""consentry.storage"""
