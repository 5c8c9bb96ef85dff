-- Customers' names and e-mail in `bi`, for the BI users allowed to see them: made when
-- warehouse.bi_personal_data is true (and dropped when it is false again). It joins bi.dim_customer on
-- customer_key and bi.customers on customer_id. The BI role reads it through the schema's default
-- privileges (migration 0013).
create view bi.customer_personal_data as
select customer_key, customer_id, first_name, last_name, full_name, email
from warehouse.dim_customer
where customer_key > 0;

comment on view bi.customer_personal_data is
    'Personal data (only when warehouse.bi_personal_data is on): one row per version of a customer, '
    'with the name and e-mail of that version.';
comment on column bi.customer_personal_data.customer_key is
    'The customer version''s surrogate key: joins to dim_customer and fact_sales.';
comment on column bi.customer_personal_data.customer_id is 'The customer''s id in the shop''s system.';
comment on column bi.customer_personal_data.first_name is 'The customer''s first name (personal data).';
comment on column bi.customer_personal_data.last_name is 'The customer''s last name (personal data).';
comment on column bi.customer_personal_data.full_name is 'The customer''s full name (personal data).';
comment on column bi.customer_personal_data.email is 'The customer''s e-mail address (personal data).';
