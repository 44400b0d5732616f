"""consentry.web"""
