"""Privacy: erasing a customer on request (GDPR art. 17) and purging old comments."""
